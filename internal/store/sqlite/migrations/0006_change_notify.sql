-- Change notification (store.Store.Generation). On PostgreSQL this
-- migration installs triggers that tell the other processes sharing the
-- database of each committed change. An embedded SQLite database belongs
-- to one server process, whose own writes move the generation, so there is
-- nothing to install; the migration exists to keep the two histories
-- numbered alike.
SELECT 1;
