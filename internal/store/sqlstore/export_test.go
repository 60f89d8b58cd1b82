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

// ResourcesNamedPlan is SQLite's query plan of ResourcesNamed's query,
// its rows' details joined.
func ResourcesNamedPlan(ctx context.Context, s *Store) (string, error) {
	rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN SELECT "+resourceCols+" FROM arm_resources WHERE "+resourcesNamedWhere+" ORDER BY id_key", "t", "n")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var plan string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return "", err
		}
		plan += detail + "\n"
	}
	return plan, rows.Err()
}
