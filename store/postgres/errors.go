package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobrun/jobrun/jobs"
)

// translate is the one place where driver errors become errors that say
// what happened, wrapping a jobs sentinel where one fits. The driver error
// stays in the chain for logs. Other errors pass through unchanged.
func (db *DB) translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return fmt.Errorf("%w: already stored (%w)", jobs.ErrConflict, err)
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // admin shutdown, crash shutdown, cannot connect now
			return fmt.Errorf("%w: PostgreSQL is restarting (%w)", jobs.ErrUnavailable, err)
		case pe.Code == "53300": // too_many_connections
			return fmt.Errorf("%w: PostgreSQL has no connection to spare (%w)", jobs.ErrUnavailable, err)
		case pe.Code[:2] == "08": // connection exception
			return fmt.Errorf("%w: connection to PostgreSQL lost (%w)", jobs.ErrUnavailable, err)
		case pe.Code[:2] == "28": // invalid authorization
			return fmt.Errorf("PostgreSQL refused the credentials: %w", err)
		case pe.Code[:2] == "53": // insufficient resources
			return fmt.Errorf("PostgreSQL is out of disk or memory: %w", err)
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: cannot reach PostgreSQL (%w)", jobs.ErrUnavailable, err)
	}
	return err
}
