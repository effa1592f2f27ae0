-- Chat usage rows name the limits they count against: 'model' (model-spending commands and
-- review requests, as every row so far) or 'free' (help, config, learnings and unknown words,
-- which spend no model budget but make the bot post, so they have limits of their own).
ALTER TABLE chat_usage ADD COLUMN tier TEXT NOT NULL DEFAULT 'model'
    CHECK (tier IN ('model', 'free'));
