ALTER TABLE `notes` ADD `archived` integer DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX `notes_archived_idx` ON `notes` (`archived`);