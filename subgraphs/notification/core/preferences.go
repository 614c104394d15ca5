package core

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/uuids"
)

// ChannelPreferences says which channels a user wants for one category.
type ChannelPreferences struct {
	Email bool `json:"email"`
	SMS   bool `json:"sms"`
}

// Preferences are a user's channel choices per category.
type Preferences struct {
	Account      ChannelPreferences `json:"account"`
	OrderUpdates ChannelPreferences `json:"orderUpdates"`
	Marketing    ChannelPreferences `json:"marketing"`
}

// DefaultPreferences apply to a user who never chose: email about the
// account and orders, no SMS, no marketing.
func DefaultPreferences() Preferences {
	return Preferences{
		Account:      ChannelPreferences{Email: true},
		OrderUpdates: ChannelPreferences{Email: true},
	}
}

// For returns the choices for category c.
func (p Preferences) For(c Category) ChannelPreferences {
	switch c {
	case Account:
		return p.Account
	case OrderUpdates:
		return p.OrderUpdates
	}
	return p.Marketing
}

// ChannelPreferencesInput changes one category; nil fields stay as they are.
type ChannelPreferencesInput struct {
	Email *bool `json:"email"`
	SMS   *bool `json:"sms"`
}

// PreferencesInput changes a user's preferences; nil categories stay as
// they are.
type PreferencesInput struct {
	Account      *ChannelPreferencesInput `json:"account"`
	OrderUpdates *ChannelPreferencesInput `json:"orderUpdates"`
	Marketing    *ChannelPreferencesInput `json:"marketing"`
}

type preferencesRow struct {
	bun.BaseModel `bun:"table:preferences"`

	UserID         string    `bun:"user_id,pk,type:uuid"`
	AccountEmail   bool      `bun:"account_email"`
	AccountSMS     bool      `bun:"account_sms"`
	OrderEmail     bool      `bun:"order_email"`
	OrderSMS       bool      `bun:"order_sms"`
	MarketingEmail bool      `bun:"marketing_email"`
	MarketingSMS   bool      `bun:"marketing_sms"`
	UpdatedAt      time.Time `bun:"updated_at"`
}

func (r *preferencesRow) preferences() Preferences {
	return Preferences{
		Account:      ChannelPreferences{Email: r.AccountEmail, SMS: r.AccountSMS},
		OrderUpdates: ChannelPreferences{Email: r.OrderEmail, SMS: r.OrderSMS},
		Marketing:    ChannelPreferences{Email: r.MarketingEmail, SMS: r.MarketingSMS},
	}
}

func rowOf(userID string, p Preferences, at time.Time) *preferencesRow {
	return &preferencesRow{
		UserID:       userID,
		AccountEmail: p.Account.Email, AccountSMS: p.Account.SMS,
		OrderEmail: p.OrderUpdates.Email, OrderSMS: p.OrderUpdates.SMS,
		MarketingEmail: p.Marketing.Email, MarketingSMS: p.Marketing.SMS,
		UpdatedAt: at,
	}
}

// preferences reads a user's preferences through db (the pool or a
// transaction); the defaults when they never chose.
func preferences(ctx context.Context, db bun.IDB, userID string, lock bool) (Preferences, error) {
	row := new(preferencesRow)
	q := db.NewSelect().Model(row).Where("user_id = ?", userID)
	if lock {
		q.For("UPDATE")
	}
	err := q.Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultPreferences(), nil
	}
	if err != nil {
		return Preferences{}, fmt.Errorf("read preferences: %w", err)
	}
	return row.preferences(), nil
}

// Preferences returns the preferences of a user.
func (n *Notifications) Preferences(ctx context.Context, userID string) (Preferences, error) {
	id, ok := uuids.Canonical(userID)
	if !ok {
		return DefaultPreferences(), nil
	}
	return preferences(ctx, n.db, id, false)
}

// UpdatePreferences applies in to a user's preferences and returns them.
// They decide the channels of notifications recorded from now on; those
// already queued are delivered as recorded.
func (n *Notifications) UpdatePreferences(ctx context.Context, userID string, in PreferencesInput) (Preferences, error) {
	id, ok := uuids.Canonical(userID)
	if !ok {
		return Preferences{}, fmt.Errorf("user id %q is not a UUID", userID)
	}
	var out Preferences
	err := n.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// Two concurrent updates of different categories must both stick:
		// the first row is created empty-handed, then locked and changed.
		at := postgres.Now()
		if _, err := tx.NewInsert().Model(rowOf(id, DefaultPreferences(), at)).
			On("CONFLICT (user_id) DO NOTHING").Exec(ctx); err != nil {
			return fmt.Errorf("create preferences: %w", err)
		}
		p, err := preferences(ctx, tx, id, true)
		if err != nil {
			return err
		}
		apply(&p.Account, in.Account)
		apply(&p.OrderUpdates, in.OrderUpdates)
		apply(&p.Marketing, in.Marketing)
		if _, err := tx.NewUpdate().Model(rowOf(id, p, at)).WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update preferences: %w", err)
		}
		out = p
		return nil
	})
	return out, err
}

func apply(p *ChannelPreferences, in *ChannelPreferencesInput) {
	if in == nil {
		return
	}
	if in.Email != nil {
		p.Email = *in.Email
	}
	if in.SMS != nil {
		p.SMS = *in.SMS
	}
}
