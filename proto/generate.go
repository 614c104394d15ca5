// Package proto holds the event contracts. Run `make generate` (or go
// generate ./proto) to regenerate the Go code next to each .proto file.
package proto

//go:generate sh -c "protoc --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --go_out=. --go_opt=module=github.com/onlinemart/mart/proto -I . $(find . -name '*.proto' | sort)"
