-- A source may delete (instead of archive) the mirrors it made when their
-- repository leaves its list; only mirrors it created, never adopted ones.
ALTER TABLE mirror_sources ADD COLUMN delete_missing INTEGER NOT NULL DEFAULT 0;
-- 1: the source created this mirror; 0: it adopted an existing one (or the
-- row predates this column, which counts as adopted: never deleted).
ALTER TABLE mirror_source_repos ADD COLUMN created INTEGER NOT NULL DEFAULT 0;
