// Package reply reads the loosely typed replies of commands that go-redis
// returns as interface{} (XINFO, TIME, script results), alike in RESP2 and
// RESP3.
package reply

import (
	"math"
	"strconv"
	"time"
)

// Map turns a field-value reply into a map: a flat RESP2 array or a RESP3
// map. Anything else gives an empty map.
func Map(v interface{}) map[string]interface{} {
	switch r := v.(type) {
	case map[string]interface{}:
		return r
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(r))
		for k, val := range r {
			m[String(k)] = val
		}
		return m
	case []interface{}:
		m := make(map[string]interface{}, len(r)/2)
		for j := 0; j+1 < len(r); j += 2 {
			m[String(r[j])] = r[j+1]
		}
		return m
	}
	return map[string]interface{}{}
}

// Int reads an integer reply, or a string or whole float holding one.
func Int(v interface{}) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		return i, err == nil
	case float64:
		if n == math.Trunc(n) {
			return int64(n), true
		}
	}
	return 0, false
}

// String reads a string reply ("" for anything but a string, bytes or an
// integer).
func String(v interface{}) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	case int64:
		return strconv.FormatInt(s, 10)
	}
	return ""
}

// Time reads a TIME reply; the zero time when it is not one.
func Time(v interface{}) time.Time {
	parts, _ := v.([]interface{})
	if len(parts) != 2 {
		return time.Time{}
	}
	sec, ok1 := Int(parts[0])
	usec, ok2 := Int(parts[1])
	if !ok1 || !ok2 {
		return time.Time{}
	}
	return time.Unix(sec, usec*1000)
}
