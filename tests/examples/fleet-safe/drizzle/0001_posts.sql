CREATE TABLE `posts` (
	`id` integer PRIMARY KEY NOT NULL,
	`author_id` integer NOT NULL,
	`title` text NOT NULL,
	FOREIGN KEY (`author_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `posts_author_idx` ON `posts` (`author_id`);--> statement-breakpoint
INSERT INTO `users` (`name`) VALUES ('ada');--> statement-breakpoint
INSERT INTO `posts` (`id`, `author_id`, `title`) VALUES (1, 1, 'hello');