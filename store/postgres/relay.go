package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/jobrun/jobrun/jobs"
)

// What replicas tell each other through the database, besides job
// changes: cancel requests for a job whose agent is connected to another
// replica, and the shared secret that signs sessions and share links.

// ServeCancels makes this DB answer other replicas' cancel requests
// (RelayCancel): fn is called, in a goroutine of the DB's, with the job
// of each request, and its nil return is acknowledged to the requester.
// fn returns an error when the job's agent is not connected here.
func (db *DB) ServeCancels(fn func(ctx context.Context, id jobs.ID) error) {
	if l := db.listening(); l != nil {
		l.mu.Lock()
		l.onCancel = fn
		l.mu.Unlock()
	}
}

// RelayCancel asks the replica whose ServeCancels function reaches job
// id's agent to cancel the job, and waits up to Options.CancelWait for it
// to acknowledge. No acknowledgement (no replica has the agent) is an
// error wrapping jobs.ErrConflict, as for a local cancel without an
// agent.
func (db *DB) RelayCancel(ctx context.Context, id jobs.ID) error {
	l := db.listening()
	if l == nil {
		return fmt.Errorf("relay cancel of job %d: the database is closed", id)
	}
	ctx, cancel := context.WithTimeout(ctx, db.opts.CancelWait)
	defer cancel()
	// Listen before asking, or the answer could come first.
	if err := l.waitReady(ctx); err != nil {
		return fmt.Errorf("relay cancel of job %d: not listening to the other replicas: %w", id, jobs.ErrUnavailable)
	}
	var raw [12]byte
	rand.Read(raw[:])
	req := hex.EncodeToString(raw[:])
	ack := make(chan struct{})
	l.mu.Lock()
	l.acks[req] = ack
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.acks, req)
		l.mu.Unlock()
	}()
	if _, err := db.pool.Exec(ctx, "SELECT pg_notify($1, $2)", notifyCancel, fmt.Sprintf("%d %s", id, req)); err != nil {
		return fmt.Errorf("relay cancel of job %d: %w", id, db.translate(err))
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("job %d: agent not connected to any replica: %w", id, jobs.ErrConflict)
		}
		return ctx.Err()
	}
}

// secretLen is the size of a new secret: 32 bytes, as the file next to a
// SQLite database holds.
const secretLen = 32

// Secret returns the secret all replicas sign sessions and share links
// with, making it on first use: whichever replica starts first makes it,
// the others read it.
func (db *DB) Secret(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, secretLen)
	rand.Read(fresh)
	var secret []byte
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO settings (name, value) VALUES ('secret', $1)
			ON CONFLICT (name) DO NOTHING`, fresh); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT value FROM settings WHERE name = 'secret'").Scan(&secret)
	})
	if err != nil {
		return nil, fmt.Errorf("server secret: %w", err)
	}
	if len(secret) < secretLen {
		return nil, fmt.Errorf("server secret in %s: %d bytes, want at least %d; jobrun secret rotate makes a new one", db.name, len(secret), secretLen)
	}
	return secret, nil
}

// RotateSecret replaces the secret and tells every replica (WatchSecret),
// which ends every session and share link made with the old one.
func (db *DB) RotateSecret(ctx context.Context) error {
	fresh := make([]byte, secretLen)
	rand.Read(fresh)
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		var b pgx.Batch
		b.Queue(`INSERT INTO settings (name, value) VALUES ('secret', $1)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, fresh)
		b.Queue("SELECT pg_notify($1, '')", notifySecret)
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("rotate the server secret: %w", err)
	}
	return nil
}

// WatchSecret calls fn with the new secret whenever another process
// rotates it (in a goroutine of the DB's).
func (db *DB) WatchSecret(fn func([]byte)) {
	l := db.listening()
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onSecret = func() {
		s, err := db.Secret(l.ctx)
		if err != nil {
			db.opts.Logger.Warn("postgres: read the rotated secret", "err", err)
			return
		}
		fn(s)
	}
}
