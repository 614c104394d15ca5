package graph

import "github.com/onlinemart/mart/internal/auth"

// Access is who may call each root field. User.notifications (through
// _entities) is public and checks the caller against the user instead.
var Access = auth.Rules{
	"Query.notificationPreferences":          auth.SignedIn,
	"Mutation.updateNotificationPreferences": auth.SignedIn,
	"Mutation.resendNotification":            auth.Roles(auth.Admin),
}
