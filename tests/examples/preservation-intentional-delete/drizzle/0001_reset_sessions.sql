-- Custom SQL migration file, put your code below! --
DELETE FROM `sessions`;--> statement-breakpoint
UPDATE `members` SET `mentor_id` = NULL;