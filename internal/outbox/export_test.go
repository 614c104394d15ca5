package outbox

// SetAfterPublish installs a hook that runs after the broker acknowledged a
// batch of n events and before the relay deletes it; returning an error
// abandons the batch as a crash at that point would.
func SetAfterPublish(r *Relay, fn func(n int) error) { r.afterPublish = fn }
