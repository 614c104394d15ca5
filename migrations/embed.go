// Package migrations embeds the SQL migrations of every database. Folder
// "platform" holds the tables every service database shares (outbox, inbox);
// each other folder belongs to the service of the same name (every folder
// here is embedded, so a new service only adds its own).
package migrations

import "embed"

// FS holds every migration, one folder per migration set.
//
//go:embed *
var FS embed.FS
