// Package migrations embeds the SQL migrations of every database. Folder
// "platform" holds the tables every service database shares (outbox, inbox);
// each other folder belongs to the service of the same name.
package migrations

import "embed"

// FS holds every migration, one folder per migration set.
//
//go:embed platform product user
var FS embed.FS
