package sqlstore

import "context"

// WriterSynchronous reads PRAGMA synchronous on the connection that queue
// batches run on (0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA); -1 when the store has
// not opened it.
func WriterSynchronous(ctx context.Context, s *Store) (int, error) {
	w := s.queueWriter
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		return -1, nil
	}
	var level int
	err := w.conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&level)
	return level, err
}

// LightSynchronous opens a light batch's transaction on the queue
// connection, reads PRAGMA synchronous inside it and rolls it back.
func LightSynchronous(ctx context.Context, s *Store) (int, error) {
	w := s.queueWriter
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.begin(ctx, s.db, true); err != nil {
		return 0, err
	}
	var level int
	err := w.conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&level)
	if eerr := w.end(false); err == nil {
		err = eerr
	}
	return level, err
}
