-- Custom SQL migration file, put your code below! --
CREATE INDEX `notes_title_idx` ON `notes` (`title`);