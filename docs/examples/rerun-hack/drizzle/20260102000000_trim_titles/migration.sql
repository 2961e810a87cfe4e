-- Custom SQL migration file, put your code below! --
UPDATE `notes` SET `title` = trim(`title`);