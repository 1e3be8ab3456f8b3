-- PostgreSQL dialect of sqlite_014_rcpt_as_given.sql (see there).
ALTER TABLE recipients ADD COLUMN IF NOT EXISTS rcpt_to text NOT NULL DEFAULT ''
