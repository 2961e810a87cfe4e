"""`pytest --dosqlite --dosqlite-project ../shared/corpus/<project>` fails exactly on real defects.

The expected failures are the defects INDEX.md and each SOURCE.txt document (plus what only a
Durable Object refuses: karakeep's CREATE TEMPORARY TABLE, openstatus's libSQL ALTER COLUMN,
crewhelm's recreations that need foreign keys off). Skipped without ../shared.
"""

from __future__ import annotations

import re

import pytest

from conftest import shared_path

CHECKS = (
    "bundle_integrity,upgrade_from_empty,idempotent,wrangler_contract,upgrade_from_every_version"
)
H = "_history/"
EXPECTED: dict[str, set[str]] = {
    "GlennMm__typescript_backend_template": {
        H + "67c4bdbebc90875f5dbde1d263add78839154ce7/drizzle/tenant::bundle_integrity",
        H + "67c4bdbebc90875f5dbde1d263add78839154ce7/drizzle/tenant::upgrade_from_empty",
    },
    "Litengat__uno": set(),
    "fkrein1__crewhelm": {
        H + "af107f581a795e8c6c40c67dc61e5047ff366225/apps/worker/control-plane-migrations"
        "::bundle_integrity",
        "apps/worker/control-plane-migrations::upgrade_from_empty",
    },
    "jhonsfran1165__unprice": set(),
    "karakeep-app__karakeep": {"packages/db/drizzle::upgrade_from_empty"},
    "nicholasgriffintn__bitwobbly.com": {
        "packages/shared/drizzle::bundle_integrity",
        "packages/shared/drizzle::upgrade_from_empty",
    },
    "nicholasgriffintn__sprintjam.co.uk": {"apps/auth-worker/drizzle::bundle_integrity"},
    "openstatusHQ__openstatus": {
        H + "25c3cd68a3e4b17208da97734860399ed50e3a9a/packages/db/drizzle::bundle_integrity",
        H + "25c3cd68a3e4b17208da97734860399ed50e3a9a/packages/db/drizzle::upgrade_from_empty",
        "packages/db/drizzle::upgrade_from_empty",
    },
}


@pytest.mark.parametrize("project", sorted(EXPECTED))
def test_corpus_project_fails_exactly_on_its_defects(
    pytester: pytest.Pytester, project: str
) -> None:
    root = shared_path("corpus", project)
    result = pytester.runpytest_subprocess(
        "--dosqlite",
        "--dosqlite-project",
        str(root),
        "--dosqlite-no-git",
        f"--dosqlite-checks-include={CHECKS}",
        "-p",
        "no:cacheprovider",
        "-rf",
    )
    failed = set()
    for line in result.stdout.lines:
        m = re.match(r"FAILED \S*?corpus/[^/]+/(\S+?)/meta/_journal\.json::(\w+)", line)
        if m:
            failed.add(f"{m.group(1)}::{m.group(2)}")
    assert failed == EXPECTED[project], result.stdout.str()[-3000:]
    assert "Traceback" not in result.stdout.str()
    assert result.ret == (1 if EXPECTED[project] else 0)
