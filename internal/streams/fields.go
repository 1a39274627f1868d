package streams

import "slices"

// Flatten lists fields as alternating field names and values, in name
// order, the form XADD takes: entries with the same fields in the same
// order are stored compactly by Redis (one master entry per node).
func Flatten(fields map[string]interface{}) []interface{} {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	flat := make([]interface{}, 0, 2*len(names))
	for _, k := range names {
		flat = append(flat, k, fields[k])
	}
	return flat
}
