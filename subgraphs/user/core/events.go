package core

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/ptr"
	userv1 "github.com/onlinemart/mart/proto/user/v1"
)

// Publishes are the events the user service writes to its outbox:
// accounts created, contact details changed, roles changed.
var Publishes = []proto.Message{
	(*userv1.UserRegistered)(nil), (*userv1.UserProfileUpdated)(nil), (*userv1.UserRoleChanged)(nil),
}

func roleToEvent(r auth.Role) userv1.Role {
	switch r {
	case auth.Customer:
		return userv1.Role_ROLE_CUSTOMER
	case auth.Admin:
		return userv1.Role_ROLE_ADMIN
	}
	return userv1.Role_ROLE_UNSPECIFIED
}

func registeredEvent(u *User) *userv1.UserRegistered {
	return &userv1.UserRegistered{
		UserId: u.ID, Email: u.Email, Name: u.Name, Phone: ptr.Value(u.Phone),
		Role: roleToEvent(u.Role), RegisteredAt: timestamppb.New(u.CreatedAt),
	}
}

func profileUpdatedEvent(u *User) *userv1.UserProfileUpdated {
	return &userv1.UserProfileUpdated{
		UserId: u.ID, Email: u.Email, Name: u.Name, Phone: ptr.Value(u.Phone), UpdatedAt: timestamppb.New(u.UpdatedAt),
	}
}

func roleChangedEvent(id string, from, to auth.Role, at time.Time) *userv1.UserRoleChanged {
	return &userv1.UserRoleChanged{
		UserId: id, OldRole: roleToEvent(from), NewRole: roleToEvent(to), ChangedAt: timestamppb.New(at),
	}
}
