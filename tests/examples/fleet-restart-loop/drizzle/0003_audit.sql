-- Custom SQL migration file, put your code below! --
CREATE TABLE `audit` (`id` integer PRIMARY KEY, `what` text NOT NULL);
CREATE TRIGGER `users_audit` AFTER INSERT ON `users` BEGIN
  INSERT INTO `audit` (`what`) VALUES ('user ' || NEW.name);
END;
INSERT INTO `users` (`name`) VALUES ('grace');
