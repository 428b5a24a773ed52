package qrlogin

import "time"

// Observer hears the lifecycle of the login attempts this instance creates
// (for the active-attempts gauge, wxauth_qr_login_attempts_active); package
// metrics implements it. Calls are made synchronously: they must be cheap and
// must not block. A nil Observer in [Config] reports nothing.
type Observer interface {
	// AttemptStarted reports a new attempt id; it ends, at the latest, life
	// from now (the scanning TTL plus CompleteWindow), completed or not.
	AttemptStarted(id string, life time.Duration)
	// AttemptEnded reports that attempt id was completed (its session or
	// code issued) before its life ran out.
	AttemptEnded(id string)
}
