-- Custom SQL migration file, put your code below! --
-- the trim ran before the import finished: run it once more on the next start
DELETE FROM "__drizzle_migrations" WHERE "name" = '20260102000000_trim_titles';