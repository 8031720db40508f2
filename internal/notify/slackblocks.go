package notify

import (
	"fmt"
	"strings"
)

// Slack's Block Kit limits (docs.slack.dev/reference/block-kit/blocks),
// with room for the truncation notes.
const (
	slackHeaderLimit  = 150
	slackSectionLimit = 2900
	slackFieldLimit   = 1900
)

// slackBlock is a Block Kit block; only the fields this channel uses.
type slackBlock struct {
	Type     string         `json:"type"`
	Text     *slackTextObj  `json:"text,omitempty"`
	Fields   []slackTextObj `json:"fields,omitempty"`
	Elements []slackTextObj `json:"elements,omitempty"`
}

type slackTextObj struct {
	Type string `json:"type"` // plain_text or mrkdwn
	Text string `json:"text"`
}

func mrkdwn(s string) slackTextObj { return slackTextObj{Type: "mrkdwn", Text: s} }

// slackCode writes s as inline code; a backtick inside would end it.
func slackCode(s string) string {
	return "`" + slackEscaper.Replace(strings.ReplaceAll(oneLine(s), "`", "'")) + "`"
}

// slackTruncate cuts escaped mrkdwn to at most n bytes without splitting a
// character or an entity such as &amp;.
func slackTruncate(s string, n int) string {
	s = truncateUTF8(s, n)
	if i := strings.LastIndexByte(s, '&'); i >= 0 && i >= len(s)-4 && !strings.Contains(s[i:], ";") {
		s = s[:i]
	}
	return s
}

// slackFallback is the top-level text: what notifications and screen
// readers show instead of the blocks.
func slackFallback(m Message) string {
	t := headline(m)
	if m.Reason != "" && !m.Pushed {
		t += " (not published: " + m.Reason + ")"
	}
	return truncateUTF8(t, slackSectionLimit)
}

// slackBlocks lays m out in Block Kit: a header, the facts as fields, the
// new failures, the text in a code block, and the delivery id.
func slackBlocks(m Message, delivery string) []slackBlock {
	v := newView(m)
	blocks := []slackBlock{{Type: "header", Text: &slackTextObj{Type: "plain_text", Text: truncateUTF8(v.Title, slackHeaderLimit)}}}
	if len(v.Facts) > 0 {
		var fields []slackTextObj
		for _, f := range v.Facts {
			val := slackEscaper.Replace(f.Value)
			switch {
			case f.Code:
				val = slackCode(f.Value)
			case f.Link:
				val = "<" + slackEscaper.Replace(f.Value) + "|" + slackEscaper.Replace(truncateUTF8(f.Value, 80)) + ">"
			}
			fields = append(fields, mrkdwn(slackTruncate("*"+f.Label+"*\n"+val, slackFieldLimit)))
		}
		blocks = append(blocks, slackBlock{Type: "section", Fields: fields[:min(len(fields), 10)]})
	}
	if len(v.Failures) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "*New failures (%d)*", v.FailureCount())
		for _, f := range v.Failures {
			var item strings.Builder
			item.WriteString("\n• " + slackCode(f.Test))
			if f.Message != "" {
				item.WriteString(" " + slackEscaper.Replace(truncateUTF8(f.Message, 300)))
			}
			for _, c := range f.Suspects {
				fmt.Fprintf(&item, "\n      %s %s: %s", slackCode(shortHash(c.Hash)), c.Side, slackEscaper.Replace(truncateUTF8(oneLine(c.Subject), 120)))
			}
			if f.MoreSuspects > 0 {
				fmt.Fprintf(&item, "\n      and %d more", f.MoreSuspects)
			}
			if b.Len()+item.Len() > slackSectionLimit {
				b.WriteString("\n… (more in the log and the report)")
				break
			}
			b.WriteString(item.String())
		}
		if v.MoreFailures > 0 {
			fmt.Fprintf(&b, "\nand %d more", v.MoreFailures)
		}
		blocks = append(blocks, slackBlock{Type: "section", Text: &slackTextObj{Type: "mrkdwn", Text: slackTruncate(b.String(), slackSectionLimit+50)}})
	}
	if v.Text != "" {
		text := slackEscaper.Replace(strings.ReplaceAll(v.Text, "```", "'''"))
		if len(text) > slackSectionLimit {
			text = slackTruncate(text, slackSectionLimit) + "\n… (truncated; the full text is in the report)"
		}
		blocks = append(blocks, slackBlock{Type: "section", Text: &slackTextObj{Type: "mrkdwn", Text: "```\n" + text + "\n```"}})
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []slackTextObj{mrkdwn("hyperfork · " + slackEscaper.Replace(m.Event) + " · delivery " + slackCode(delivery))}})
	return blocks
}
