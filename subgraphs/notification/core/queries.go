package core

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/page"
	"github.com/onlinemart/mart/internal/postgres"
	"github.com/onlinemart/mart/internal/usererror"
	"github.com/onlinemart/mart/internal/uuids"
)

// ForUser returns a page of a user's notifications, newest first. Who may
// list them is decided at the GraphQL edge (the user and admins).
func (n *Notifications) ForUser(ctx context.Context, userID string, req page.Request) (*page.Page[*Notification], error) {
	id, ok := uuids.Canonical(userID)
	if !ok {
		return &page.Page[*Notification]{}, nil
	}
	var notes []*Notification
	if err := req.Keyset(n.db.NewSelect().Model(&notes)).Where("user_id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	return page.Of(notes, req), nil
}

// ResendInput names the notification to send again.
type ResendInput struct {
	NotificationID string `json:"notificationId" validate:"required,uuid"`
}

// Resend queues a copy of a notification that was sent or failed: same
// event, order, channel and content, to the user's current address on that
// channel (they may have fixed it). The copy is a new notification that
// points at the original (resend_of), so the one-per-event-and-channel
// rule still holds for what events trigger.
func (n *Notifications) Resend(ctx context.Context, in ResendInput) (*Notification, []usererror.UserError, error) {
	if errs := usererror.Validate("input", in); errs != nil {
		return nil, errs, nil
	}
	var copied *Notification
	var userErrs []usererror.UserError
	err := n.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var found []Notification
		if err := tx.NewSelect().Model(&found).Where("id = ?", in.NotificationID).Scan(ctx); err != nil {
			return fmt.Errorf("read notification: %w", err)
		}
		if len(found) == 0 {
			userErrs = []usererror.UserError{usererror.New(usererror.NotFound,
				"no notification with id "+in.NotificationID, "input", "notificationId")}
			return nil
		}
		orig := found[0]
		if orig.Status == Queued {
			userErrs = []usererror.UserError{usererror.New(usererror.Invalid,
				"the notification is still being delivered", "input", "notificationId")}
			return nil
		}
		to := orig.Recipient
		var contacts []Contact
		if err := tx.NewSelect().Model(&contacts).Where("user_id = ?", orig.UserID).Scan(ctx); err != nil {
			return fmt.Errorf("read contact: %w", err)
		}
		if len(contacts) == 1 {
			current := contacts[0].Email
			if orig.Channel == SMS {
				current = contacts[0].Phone
			}
			if current != "" {
				to = current
			}
		}
		at := postgres.Now()
		c := orig
		c.ID, c.Recipient, c.ResendOf = newID(), to, &orig.ID
		c.Status, c.Attempts, c.NextAttemptAt, c.LastError, c.SentAt = Queued, 0, &at, nil, nil
		c.CreatedAt, c.UpdatedAt = at, at
		if _, err := tx.NewInsert().Model(&c).Exec(ctx); err != nil {
			return fmt.Errorf("queue copy: %w", err)
		}
		copied = &c
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return copied, userErrs, nil
}
