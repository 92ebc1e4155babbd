-- A call-back item held for one agent while they decide and call (the preview
-- offering it, their Call): others are not offered it, and their Call is
-- refused, until the hold runs out or an attempt is recorded
-- (docs/callbacks.md, "Holds").

ALTER TABLE callback_items ADD COLUMN held_by text;
ALTER TABLE callback_items ADD COLUMN held_until timestamptz;
