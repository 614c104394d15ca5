package graph

import (
	"time"

	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/subgraphs/user/core"
)

// tokens unpacks a session for a payload; all nil without one.
func tokens(s *core.Session) (user *core.User, access, refresh *string, expires *time.Time) {
	if s == nil {
		return nil, nil, nil, nil
	}
	return s.User, &s.AccessToken, &s.RefreshToken, &s.ExpiresAt
}

func userPayload(u *core.User, errs []usererror.UserError, err error) (*UserPayload, error) {
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		u = nil
	}
	return &UserPayload{User: u, UserErrors: usererror.OrEmpty(errs)}, nil
}
