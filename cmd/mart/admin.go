package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/subgraphs/user"
	"github.com/onlinemart/mart/subgraphs/user/core"
	"github.com/onlinemart/mart/system"
)

// adminCommand runs `mart admin create --email E [--name N]`: it makes sure
// an ADMIN with that email exists, creating the account with a password
// read from the terminal (or one line of stdin), or promoting the account
// that already has the email (its password unchanged).
func adminCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: mart admin create --email EMAIL [--name NAME]")
	}
	fs := flag.NewFlagSet("admin create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the admin's email (required)")
	name := fs.String("name", "", "the admin's name (default Admin)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if strings.TrimSpace(*email) == "" || fs.NArg() > 0 {
		return errors.New("usage: mart admin create --email EMAIL [--name NAME]")
	}
	cfg, err := system.Load()
	if err != nil {
		return err
	}
	password, err := readPassword(stdin, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	spec := user.Spec(cfg.User)
	db, err := postgres.Open(ctx, postgres.Options{
		ServerURL: cfg.Runtime.DatabaseURL, Database: cfg.Services[spec.Name].Database, Migrations: spec.Migrations, Logger: log,
	})
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := core.NewAccounts(db, core.Options{Logger: log}).EnsureAdmin(ctx, *email, *name, password)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s is an admin (user %s)\n", u.Email, u.ID)
	return err
}

// readPassword prompts for the password without echo on a terminal, twice
// to catch typos; otherwise (a pipe in scripts) it reads one line.
func readPassword(stdin io.Reader, prompt io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		ask := func(label string) (string, error) {
			// The prompt and the newline after the unechoed password are
			// for the eye: the read is what can fail the command.
			_, _ = fmt.Fprint(prompt, label)
			b, err := term.ReadPassword(int(f.Fd()))
			_, _ = fmt.Fprintln(prompt)
			return string(b), err
		}
		first, err := ask("Password: ")
		if err != nil {
			return "", err
		}
		again, err := ask("Repeat password: ")
		if err != nil {
			return "", err
		}
		if first != again {
			return "", errors.New("the passwords do not match")
		}
		return first, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") { // a last line without a newline is fine
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
