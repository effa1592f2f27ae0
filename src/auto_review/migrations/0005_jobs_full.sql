-- A review job may ask to ignore incremental state and review the whole PR again (chat).
ALTER TABLE jobs ADD COLUMN full INTEGER NOT NULL DEFAULT 0;
