CREATE TABLE `posts` (
	`id` integer PRIMARY KEY,
	`title` text NOT NULL,
	`author_id` integer,
	CONSTRAINT `fk_posts_author_id_users_id_fk` FOREIGN KEY (`author_id`) REFERENCES `users`(`id`)
);
--> statement-breakpoint
ALTER TABLE `users` ADD `email` text;