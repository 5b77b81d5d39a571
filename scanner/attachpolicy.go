package scanner

import "strings"

// attachPolicy decides on file names and types.
type attachPolicy struct {
	blockedExt   map[string]bool
	execExt      map[string]bool // what makes a double extension dangerous
	blockedTypes map[string]bool
	double       bool
}

// documentExt are the extensions a "invoice.pdf.exe" pretends to have.
var documentExt = map[string]bool{
	"pdf": true, "doc": true, "docx": true, "docm": true, "xls": true, "xlsx": true, "xlsm": true,
	"ppt": true, "pptx": true, "pptm": true, "odt": true, "ods": true, "odp": true, "rtf": true,
	"txt": true, "csv": true, "xml": true, "htm": true, "html": true, "jpg": true, "jpeg": true,
	"png": true, "gif": true, "bmp": true, "tif": true, "tiff": true, "svg": true, "mp3": true,
	"mp4": true, "wav": true, "avi": true, "mov": true, "mkv": true, "wmv": true, "zip": true,
	"rar": true, "7z": true, "eml": true, "msg": true, "ics": true,
}

// newAttachPolicy compiles a; its empty lists stand for the built-in ones.
func newAttachPolicy(a Attachments) attachPolicy {
	p := attachPolicy{
		blockedExt:   map[string]bool{},
		execExt:      map[string]bool{},
		blockedTypes: map[string]bool{},
		double:       a.DoubleExtensions,
	}
	exts, types := a.BlockedExtensions, a.BlockedTypes
	if len(exts) == 0 {
		exts = defaultBlockedExtensions
	}
	if len(types) == 0 {
		types = defaultBlockedTypes
	}
	for _, e := range exts {
		e = strings.ToLower(strings.TrimPrefix(e, "."))
		p.blockedExt[e] = true
		p.execExt[e] = true
	}
	// Allowing .exe attachments is a choice; an .exe dressed as a PDF is
	// still a trick, so the defaults count for double extensions.
	for _, e := range defaultBlockedExtensions {
		p.execExt[e] = true
	}
	for _, t := range types {
		p.blockedTypes[strings.ToLower(t)] = true
	}
	return p
}

// checkName reports whether a file name has a blocked extension and
// whether it hides one behind a document extension.
func (p *attachPolicy) checkName(name string) (blocked, double bool) {
	n := normalizeName(name)
	i := strings.LastIndexByte(n, '.')
	if i < 0 {
		return false, false
	}
	ext := n[i+1:]
	blocked = p.blockedExt[ext]
	if p.double && p.execExt[ext] {
		rest := strings.TrimRight(n[:i], " .\t_-")
		if j := strings.LastIndexByte(rest, '.'); j >= 0 {
			double = documentExt[strings.TrimSpace(rest[j+1:])]
		}
	}
	return blocked, double
}

// normalizeName reduces a name to what Windows would run: the last path
// element, lower case, without NULs, and without the trailing dots and
// blanks Windows drops ("evil.exe. " runs as evil.exe).
func normalizeName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.ReplaceAll(name, "\x00", "")
	name = strings.TrimRight(name, " .\t\r\n")
	return strings.ToLower(name)
}

// blockedType reports whether the media type t (lower case) is listed,
// itself or as type/*.
func (p *attachPolicy) blockedType(t string) bool {
	if p.blockedTypes[t] {
		return true
	}
	typ, _, ok := strings.Cut(t, "/")
	return ok && p.blockedTypes[typ+"/*"]
}
