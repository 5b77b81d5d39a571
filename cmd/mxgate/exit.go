package main

// The exit status of a command, as sysexits.h names them (postqueue,
// postsuper and sendmail use the same): a script can tell a mistake in
// the call from an ID that is not there, a node it cannot reach and a
// token that is refused. The README's Commands section has the table.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"strings"

	"github.com/mxgate/mxgate/admin"
)

const (
	exitOK          = 0
	exitFailure     = 1  // anything else: a conflict (409), a refused change ...
	exitUsage       = 64 // EX_USAGE: bad flags, arguments or values (HTTP 400), a bad --admin or its variable
	exitDataErr     = 65 // EX_DATAERR: bad input data: a settings file, a message too large
	exitNoInput     = 66 // EX_NOINPUT: not found (an ID, an entry, a file)
	exitUnavailable = 69 // EX_UNAVAILABLE: the admin API cannot be reached, or lacks the feature
	exitSoftware    = 70 // EX_SOFTWARE: the node failed inside (HTTP 500)
	exitTempFail    = 75 // EX_TEMPFAIL: the node is busy; try again later
	exitProtocol    = 76 // EX_PROTOCOL: TLS refused (untrusted certificate, http against https)
	exitNoPerm      = 77 // EX_NOPERM: token missing or refused
	exitConfig      = 78 // EX_CONFIG: the node file (-c) cannot be read or is invalid
)

// exitError is an error that knows its exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode gives err the exit status code; nil stays nil, and a status
// given before (closer to the cause) is kept.
func withCode(code int, err error) error {
	var ee *exitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	return &exitError{code: code, err: err}
}

// usageError is a mistake in the call itself.
func usageError(err error) error { return withCode(exitUsage, err) }

// exitStatus is the status of a command that ended with err. ran says
// whether the command's own work began (its RunE): every error before
// that (cobra's flag parsing, argument counts, exclusive flags, unknown
// commands) is a usage error; after it, the status the error carries, or
// exitFailure.
func exitStatus(err error, ran bool) int {
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case !ran:
		return exitUsage
	}
	return exitFailure
}

// classify gives an error of a management command its exit status: from
// the HTTP status of an API error, or from what kept the request from
// being answered. withAdmin applies it to every management command.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	var ae *admin.Error
	if errors.As(err, &ae) {
		return withCode(statusCode(ae), err)
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		ne       net.Error
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &record), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return withCode(exitProtocol, err)
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		return withCode(exitUnavailable, err)
	case errors.Is(err, fs.ErrNotExist):
		return withCode(exitNoInput, err)
	}
	return err
}

// statusCode maps the HTTP status of an API error.
func statusCode(ae *admin.Error) int {
	switch s := ae.Status; {
	case s == http.StatusBadRequest && isHTTPToHTTPS(ae):
		return exitProtocol
	case s == http.StatusUnauthorized, s == http.StatusForbidden:
		return exitNoPerm
	case s == http.StatusNotFound, s == http.StatusGone:
		return exitNoInput
	case s == http.StatusBadRequest:
		// A value of the call the API refused (--since, a list value):
		// "a bad syntax in a parameter", as sysexits.h says.
		return exitUsage
	case s == http.StatusRequestEntityTooLarge, s == http.StatusUnprocessableEntity, s == http.StatusUnsupportedMediaType:
		return exitDataErr
	case s == http.StatusTooManyRequests, s == http.StatusServiceUnavailable:
		return exitTempFail
	case s == http.StatusNotImplemented, s == http.StatusBadGateway, s == http.StatusGatewayTimeout:
		return exitUnavailable
	case s == http.StatusInternalServerError:
		return exitSoftware
	}
	return exitFailure
}

// isHTTPToHTTPS is Go's answer to a plain request on a TLS port.
func isHTTPToHTTPS(ae *admin.Error) bool {
	return strings.Contains(ae.Message, "HTTP request to an HTTPS server")
}
