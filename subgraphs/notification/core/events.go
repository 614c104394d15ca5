package core

import "google.golang.org/protobuf/proto"

// Publishes is empty: notification tells people, not services.
var Publishes []proto.Message
