package ui

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Auth is how people sign in to the console: none (the zero value), a
// bearer token, or HTTP basic credentials.
type Auth struct {
	kind   string // "", "token" or "basic"
	user   string
	secret string
}

// MinPasswordLength is the shortest basic-auth password [ParseAuth]
// accepts.
const MinPasswordLength = 12

// ParseAuth parses "token:<secret>" (a secret of at least 16 characters)
// or "basic:<user>:<password>" (a password of at least
// [MinPasswordLength]).
func ParseAuth(s string) (Auth, error) {
	kind, rest, _ := strings.Cut(s, ":")
	switch kind {
	case "token":
		if len(rest) < 16 {
			return Auth{}, fmt.Errorf("%w: a token must be at least 16 characters", ErrInvalidAuth)
		}
		return Auth{kind: "token", secret: rest}, nil
	case "basic":
		user, pw, ok := strings.Cut(rest, ":")
		if !ok || user == "" || pw == "" {
			return Auth{}, fmt.Errorf("%w: want basic:<user>:<password>", ErrInvalidAuth)
		}
		if n := utf8.RuneCountInString(pw); n < MinPasswordLength {
			return Auth{}, fmt.Errorf("%w: the password is %d characters, a password must be at least %d", ErrInvalidAuth, n, MinPasswordLength)
		}
		return Auth{kind: "basic", user: user, secret: pw}, nil
	}
	return Auth{}, fmt.Errorf("%w: want token:<secret> or basic:<user>:<password>", ErrInvalidAuth)
}

// Enabled reports whether the Auth asks for credentials.
func (a Auth) Enabled() bool { return a.kind != "" }

// String describes the Auth without its secret: "none", "token" or
// "basic (user alice)".
func (a Auth) String() string {
	switch a.kind {
	case "token":
		return "token"
	case "basic":
		return "basic (user " + a.user + ")"
	}
	return "none"
}

// CheckListen refuses a listen address that is not loopback without auth:
// an empty host (every interface), an IP that is not loopback, or a name
// other than localhost.
func CheckListen(addr string, auth Auth) error {
	if auth.Enabled() || IsLoopback(addr) {
		return nil
	}
	return fmt.Errorf("%w: %s is not a loopback address", ErrAuthRequired, addr)
}

// IsLoopback reports whether the host of addr ("host:port") is loopback:
// localhost, 127.0.0.0/8 or ::1.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sessionCookie is the cookie that holds a token session, named after the
// port so that consoles on several ports of one host keep theirs.
func sessionCookie(port string) string { return "millrace_session_" + port }

// session is the cookie value of a token: its SHA-256, so the token itself
// is not stored in the browser.
func (a Auth) session() string {
	sum := sha256.Sum256([]byte("millrace-ui-session:" + a.secret))
	return hex.EncodeToString(sum[:])
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// who returns who r is signed in as ("" without Auth, "token" for a
// token), false when r carries no valid credentials.
func (a Auth) who(r *http.Request, port string) (string, bool) {
	switch a.kind {
	case "basic":
		u, p, ok := r.BasicAuth()
		if ok && equal(u, a.user) && equal(p, a.secret) {
			return u, true
		}
		return "", false
	case "token":
		if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && equal(bearer, a.secret) {
			return "token", true
		}
		if c, err := r.Cookie(sessionCookie(port)); err == nil && equal(c.Value, a.session()) {
			return "token", true
		}
		return "", false
	}
	return "", true
}

// require wraps h with the Auth: a request without valid credentials gets
// 401 (with a basic-auth challenge, or the token form for a page).
// POST /login checks a token from the form and sets the session cookie.
// Wrong credentials are logged and throttled per client address
// (signinGuard): past the allowance, 429 before any check.
func (s *Server) require(h http.Handler) http.Handler {
	a := s.cfg.Auth
	if !a.Enabled() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/assets/") {
			h.ServeHTTP(w, r) // the static files hold nothing secret; the sign-in page uses them
			return
		}
		login := a.kind == "token" && r.URL.Path == "/login" && r.Method == http.MethodPost
		credentials := login || r.Header.Get("Authorization") != ""
		if credentials {
			if wait, ok := s.signin.allow(r.RemoteAddr, r.URL.Path); !ok {
				secs := int(wait.Seconds()) + 1
				w.Header().Set("Retry-After", strconv.Itoa(secs))
				http.Error(w, fmt.Sprintf("too many wrong credentials from your address: try again in %ds", secs), http.StatusTooManyRequests)
				return
			}
		}
		if login {
			s.login(w, r)
			return
		}
		if _, ok := a.who(r, s.port); ok {
			if credentials {
				s.signin.signedIn(r.RemoteAddr)
			}
			h.ServeHTTP(w, r)
			return
		}
		if credentials {
			what := "bearer token"
			if a.kind == "basic" {
				what = "user or password"
			}
			s.signin.wrong(r.RemoteAddr, r.URL.Path, what)
		}
		if a.kind == "basic" {
			w.Header().Set("WWW-Authenticate", `Basic realm="millrace", charset="UTF-8"`)
			http.Error(w, "sign in to the millrace console", http.StatusUnauthorized)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			http.Error(w, "sign in to the millrace console: Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_ = s.pages.ExecuteTemplate(w, "login.html", nil)
	})
}

// login checks the token of the sign-in form and sets the session cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !equal(r.PostFormValue("token"), s.cfg.Auth.secret) {
		s.signin.wrong(r.RemoteAddr, r.URL.Path, "token")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_ = s.pages.ExecuteTemplate(w, "login.html", map[string]bool{"Wrong": true})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie(s.port), Value: s.cfg.Auth.session(), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Expires: time.Now().Add(7 * 24 * time.Hour),
	})
	s.signin.signedIn(r.RemoteAddr)
	s.log.Info("signed in", "remote", r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
