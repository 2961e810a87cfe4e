CREATE TABLE `members` (
	`org_id` text NOT NULL,
	`user_id` integer NOT NULL,
	`role` text NOT NULL,
	`email` text,
	CONSTRAINT `members_pk` PRIMARY KEY(`org_id`, `user_id`),
	CONSTRAINT `fk_members_org_id_orgs_id_fk` FOREIGN KEY (`org_id`) REFERENCES `orgs`(`id`) ON DELETE CASCADE,
	CONSTRAINT `members_email_role` UNIQUE(`email`,`role`)
);
--> statement-breakpoint
CREATE TABLE `orgs` (
	`id` text PRIMARY KEY,
	`slug` text NOT NULL UNIQUE,
	`plan` text DEFAULT 'free' NOT NULL,
	`seats` integer DEFAULT 3 NOT NULL,
	`ratio` real DEFAULT 0.5,
	`active` integer DEFAULT true NOT NULL,
	`created_at` integer DEFAULT (unixepoch()) NOT NULL,
	`slug_lower` text GENERATED ALWAYS AS (lower(slug)) VIRTUAL,
	CONSTRAINT "seats_positive" CHECK("seats" > 0)
);
--> statement-breakpoint
CREATE INDEX `members_lower_email` ON `members` (lower("email"));--> statement-breakpoint
CREATE INDEX `orgs_active_idx` ON `orgs` (`active`) WHERE "orgs"."active" = 1;--> statement-breakpoint
CREATE VIEW `active_orgs` AS select "id", "slug", "plan", "seats", "ratio", "active", "created_at", "slug_lower" from "orgs" where "orgs"."active" = 1;