package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

// The server secret signs browser sessions and share links. For a SQLite
// database it lives in a file next to it, "<db>.secret" (64 hex digits,
// mode 0600), made on first use, so that jobrun serve and a local jobrun
// share sign with the same key, and sessions and links outlive a restart.
// For a PostgreSQL database it lives in the database, made by the first
// replica, so that every replica accepts what another signed. jobrun
// secret rotate replaces it, which ends every session and share link.

func secretCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "secret",
		Usage: "manage the secret that signs sessions and share links",
		Subcommands: []*cli.Command{{
			Name:  "rotate",
			Usage: "replace the secret: every browser session and share link made so far stops working",
			Description: "rotate makes a new secret for the database (--db): in the file next to a SQLite database, which a running " +
				"jobrun serve reads at its next start; in a PostgreSQL database, where every running replica takes it at once.",
			Flags: []cli.Flag{dbFlag()},
			Action: func(c *cli.Context) error {
				if c.NArg() > 0 {
					return usageError("secret rotate: unexpected argument %q", c.Args().First())
				}
				db, err := openExistingDB(c)
				if err != nil {
					return err
				}
				defer db.Close()
				if db.pg != nil {
					if err := db.pg.RotateSecret(c.Context); err != nil {
						return fmt.Errorf("secret rotate: %w", err)
					}
					fmt.Fprintf(io.err, "jobrun: new secret in %s; every replica uses it now, and sessions and share links made before no longer work\n", db.name())
					return nil
				}
				path := secretPath(db.sq.Path())
				if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("secret rotate: %w", err)
				}
				if err := makeSecret(path); err != nil {
					return fmt.Errorf("secret rotate: %w", err)
				}
				fmt.Fprintf(io.err, "jobrun: new secret in %s; restart jobrun serve to use it (sessions and share links made before no longer work)\n", path)
				return nil
			},
		}},
	}
}

// secretPath is the secret file of the database at db.
func secretPath(db string) string { return db + ".secret" }

// loadSecret reads the secret file, making it first when it is missing.
// warn receives a warning when the file can be read by other users.
func loadSecret(path string, warn func(string)) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := makeSecret(path); err != nil {
			return nil, err
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("server secret: %w", err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(secret) < 32 {
		return nil, fmt.Errorf("server secret %s: want 64 hex digits; remove the file to make a new one (this ends every session and share link)", path)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 && warn != nil {
		warn(fmt.Sprintf("the server secret %s can be read by other users (mode %v), who could make share links: chmod 600 it", path, fi.Mode().Perm()))
	}
	return secret, nil
}

// makeSecret writes a new secret at path, unless another process wins the
// race to do it: the file appears whole (a hard link of a finished
// temporary file) or not at all.
func makeSecret(path string) error {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("server secret: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secret-*")
	if err != nil {
		return fmt.Errorf("server secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("server secret: %w", err)
	}
	_, err = tmp.WriteString(hex.EncodeToString(raw[:]) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("server secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("server secret: %w", err)
	}
	return nil
}
