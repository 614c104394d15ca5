package notification

import (
	"github.com/onlinemart/mart/internal/envvar"
	"github.com/onlinemart/mart/subgraphs/notification/core"
)

// Config is how the notification service delivers: an SMTP server for
// email and an HTTP provider for SMS. Either left without an address
// writes its messages to the log.
type Config struct {
	SMTP core.SMTPOptions
	SMS  core.HTTPSMSOptions
}

// Vars declares the delivery settings.
func (c *Config) Vars() []envvar.Var {
	return []envvar.Var{
		envvar.String(&c.SMTP.Addr, "MART_SMTP_ADDR", "", "notification service: SMTP server host:port; empty writes emails to the log"),
		envvar.String(&c.SMTP.Username, "MART_SMTP_USERNAME", "", "notification service: SMTP auth user (PLAIN, only over TLS)"),
		envvar.String(&c.SMTP.Password, "MART_SMTP_PASSWORD", "", "notification service: SMTP auth password"),
		envvar.OneOf(&c.SMTP.StartTLS, "MART_SMTP_STARTTLS", "auto", "notification service: STARTTLS auto (when offered), always, or never", "auto", "always", "never"),
		envvar.String(&c.SMTP.From, "MART_SMTP_FROM", "Online Mart <no-reply@mart.local>", "notification service: From of every email"),
		envvar.String(&c.SMS.URL, "MART_SMS_URL", "", "notification service: SMS provider endpoint; empty writes texts to the log"),
		envvar.String(&c.SMS.Token, "MART_SMS_TOKEN", "", "notification service: bearer token for the SMS provider"),
		envvar.OneOf(&c.SMS.Format, "MART_SMS_FORMAT", "json", "notification service: SMS request body, json or form", "json", "form"),
	}
}
