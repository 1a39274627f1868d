package ui

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
)

// csrfHeader carries the per-server token of index.html's meta tag on
// every action. A page of another site cannot read that token, and a
// cross-site request cannot set the header without a CORS preflight,
// which this server never grants.
const csrfHeader = "X-Millrace-Csrf"

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	return hex.EncodeToString(b)
}

// securityHeaders are set on every response: nothing loads from outside,
// the page is never framed, nothing is sniffed.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// checkHost refuses, on a loopback listener, a Host header that does not
// name loopback: a page of another site whose name was made to resolve to
// 127.0.0.1 (DNS rebinding) would otherwise be same-origin with the
// console.
func (s *Server) checkHost(h http.Handler) http.Handler {
	if !s.loopback {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsLoopback(r.Host) {
			s.log.Warn("request refused: host is not loopback", "host", r.Host, "remote", r.RemoteAddr)
			http.Error(w, "this console answers only to localhost, 127.0.0.1 or [::1]", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// checkAction refuses an action request unless it is a same-origin JSON
// POST that carries the CSRF token, and answers 403 on a read-only
// console. It returns false when it answered.
func (s *Server) checkAction(w http.ResponseWriter, r *http.Request) bool {
	refuse := func(code int, why string) bool {
		s.log.Warn("action refused", "path", r.URL.Path, "why", why, "remote", r.RemoteAddr)
		http.Error(w, why, code)
		return false
	}
	if s.cfg.ReadOnly {
		return refuse(http.StatusForbidden, "read-only console: actions are disabled")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return refuse(http.StatusMethodNotAllowed, "actions are POST requests")
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return refuse(http.StatusForbidden, "cross-site request refused (Sec-Fetch-Site: "+site+")")
	}
	if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r.Host) {
		return refuse(http.StatusForbidden, "cross-origin request refused (Origin: "+origin+")")
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return refuse(http.StatusUnsupportedMediaType, "actions take application/json")
	}
	if !equal(r.Header.Get(csrfHeader), s.csrf) {
		return refuse(http.StatusForbidden, "missing or wrong CSRF token: reload the page")
	}
	return true
}

func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, host)
}
