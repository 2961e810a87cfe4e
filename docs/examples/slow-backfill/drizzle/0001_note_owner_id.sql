ALTER TABLE `notes` ADD `owner_id` integer REFERENCES users(id);--> statement-breakpoint
UPDATE `notes` SET `owner_id` = (SELECT `id` FROM `users` WHERE `users`.`email` = `notes`.`owner_email`);