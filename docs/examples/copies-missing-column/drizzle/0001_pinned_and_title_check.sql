PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_notes` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`title` text NOT NULL,
	`body` text,
	`pinned` integer DEFAULT false NOT NULL,
	CONSTRAINT "notes_title_not_empty" CHECK(length("__new_notes"."title") > 0)
);
--> statement-breakpoint
INSERT INTO `__new_notes`("id", "title", "body", "pinned") SELECT "id", "title", "body", "pinned" FROM `notes`;--> statement-breakpoint
DROP TABLE `notes`;--> statement-breakpoint
ALTER TABLE `__new_notes` RENAME TO `notes`;--> statement-breakpoint
PRAGMA foreign_keys=ON;