package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// MaxDigestDomains bounds digest.domains.
const MaxDigestDomains = 1000

// DefaultDigestTime is digest.time's default.
const DefaultDigestTime = "06:00"

// Digest is the recipients' daily quarantine digest, cluster-wide (the
// node file seeds it, as reports).
type Digest struct {
	// Enabled sends each recipient with newly quarantined mail a daily
	// digest with signed release and delete links.
	Enabled bool `yaml:"enabled" json:"enabled,omitempty"`
	// Time is when (HH:MM, UTC) the master sends the day's digests;
	// "" = 06:00.
	Time string `yaml:"time" json:"time,omitempty"`
	// URL is the base of the links: the admin listener as recipients
	// reach it (https://mxgate.example.org:8025). Required when enabled.
	URL string `yaml:"url" json:"url,omitempty"`
	// From is the digest's sender; "" = postmaster@ the sending node's
	// smtp.hostname.
	From string `yaml:"from" json:"from,omitempty"`
	// Domains limit digests to recipients in these domains; none: all.
	Domains []string `yaml:"domains" json:"domains,omitempty"`
}

// Normalize trims the values; no domain reads as nil, as absent.
func (d Digest) Normalize() Digest {
	var doms []string
	for _, s := range d.Domains {
		doms = append(doms, strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "."))
	}
	d.Domains = doms
	d.Time = strings.TrimSpace(d.Time)
	d.URL = strings.TrimRight(strings.TrimSpace(d.URL), "/")
	d.From = strings.TrimSpace(d.From)
	return d
}

// At is Time as the duration past midnight (UTC); "" is 06:00.
func (d Digest) At() (time.Duration, error) {
	s := d.Time
	if s == "" {
		s = DefaultDigestTime
	}
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, fmt.Errorf("%q is not a time of day HH:MM (UTC)", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// Validate reports every problem of d, each naming its key under digest.
func (d Digest) Validate() error {
	var p problems
	d.validate(&p)
	return p.err()
}

func (d Digest) validate(p *problems) {
	if _, err := d.At(); err != nil {
		p.add("digest.time", "%v", err)
	}
	switch u, err := url.Parse(d.URL); {
	case d.URL == "":
		if d.Enabled {
			p.add("digest.url", "required with digest.enabled: the base URL recipients reach the admin listener at (https://mxgate.example.org:8025)")
		}
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		p.add("digest.url", "%q: want http(s)://host[:port][/path], without user, query or fragment", d.URL)
	}
	if d.From != "" {
		if err := bareAddress(d.From); err != nil {
			p.add("digest.from", "%v", err)
		}
	}
	if len(d.Domains) > MaxDigestDomains {
		p.add("digest.domains", "at most %d domains, got %d", MaxDigestDomains, len(d.Domains))
	}
	for i, dom := range d.Domains {
		if dom == "" || strings.ContainsAny(dom, "@ /\\") || !strings.Contains(dom, ".") && dom != "localhost" {
			p.add(fmt.Sprintf("digest.domains[%d]", i), "%q is not a domain (example.org)", dom)
		}
	}
}
