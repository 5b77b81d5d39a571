package scanner

import (
	"errors"
	"fmt"
)

// A SettingError is one bad setting of a Policy or of Local settings. Key
// names it relative to them (max_mime_parts, thresholds.reject, rules[2]),
// so that whoever embeds them can put its own path in front (see Under).
type SettingError struct {
	Key string
	Msg string
}

func (e *SettingError) Error() string { return e.Key + ": " + e.Msg }

func settingError(key, format string, args ...any) error {
	return &SettingError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Under lists the problems that err joins, as Policy.Validate and
// Local.Validate return them, each SettingError with prefix and a dot put
// before its key: Under("scanner", err) names max_mime_parts
// scanner.max_mime_parts, as the node file and the cluster configuration
// write it. Other errors are listed as they are; a nil err gives none.
func Under(prefix string, err error) []error {
	if err == nil {
		return nil
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		var se *SettingError
		if errors.As(e, &se) {
			e = &SettingError{Key: prefix + "." + se.Key, Msg: se.Msg}
		}
		out = append(out, e)
	}
	return out
}
