package console

import (
	"fmt"
	"slices"
)

// The diagram's geometry, in SVG user units.
const (
	laneWidth   = 200
	gutter      = 104 // the time column
	headerH     = 56
	rowH        = 40
	marginRight = 40
)

// diagram is a saga's messages as a sequence diagram: a lane per service,
// an arrow per message, from its sender to each service that took it.
type diagram struct {
	Width, Height int
	Lanes         []laneBox
	Rows          []row
}

type laneBox struct {
	Name string
	X    int
}

// row is one message's arrows.
type row struct {
	Msg    message
	Y      int
	Arrows []arrow
	// LabelX is where its label is centred.
	LabelX int
}

// arrow is a line from X1 to X2 at its row's height; Class says how it is
// drawn: sent (received), pending (not received yet), dead (dead-lettered).
// Retries counts the failed attempts before the receiver handled it, which
// the receiver's lane marks.
type arrow struct {
	X1, X2  int
	Class   string
	Self    bool
	Retries int
}

// RetryMark is the text of the receiver's retry mark, "" for none.
func (a arrow) RetryMark() string {
	switch a.Retries {
	case 0:
		return ""
	case 1:
		return "↻ 1 retry"
	default:
		return fmt.Sprintf("↻ %d retries", a.Retries)
	}
}

// Head is the arrowhead's points, at X2 pointing away from X1.
func (a arrow) Head(y int) []int {
	dir := 1
	if a.X2 < a.X1 {
		dir = -1
	}
	return []int{a.X2, y, a.X2 - dir*9, y - 5, a.X2 - dir*9, y + 5}
}

func drawDiagram(lanes []string, msgs []message) diagram {
	d := diagram{Width: gutter + len(lanes)*laneWidth + marginRight, Height: headerH + len(msgs)*rowH + 24}
	x := map[string]int{}
	for i, name := range lanes {
		lx := gutter + i*laneWidth + laneWidth/2
		x[name] = lx
		d.Lanes = append(d.Lanes, laneBox{Name: name, X: lx})
	}
	for i, m := range msgs {
		r := row{Msg: m, Y: headerH + i*rowH + rowH/2 + 6}
		from := x[m.From]
		minX, maxX := from, from
		retries := map[string]int{}
		for _, e := range m.Retried() {
			retries[e.Service] = e.Retries()
		}
		add := func(to, class string) {
			tx := x[to]
			r.Arrows = append(r.Arrows, arrow{X1: from, X2: tx, Class: class, Self: tx == from, Retries: retries[to]})
			minX, maxX = min(minX, tx), max(maxX, tx)
		}
		for _, to := range m.To {
			class := "sent"
			switch {
			case m.Dead != nil:
				class = "dead"
			case m.Replayed:
				class = "replayed"
			}
			add(to, class)
		}
		for _, to := range m.Missing {
			if !slices.Contains(m.To, to) {
				add(to, "pending")
			}
		}
		if len(r.Arrows) == 0 { // sent, and nobody with a timeline takes it
			maxX = from + laneWidth/2
		}
		r.LabelX = (minX + maxX) / 2
		if maxX == minX {
			r.LabelX = minX + laneWidth/2
		}
		d.Rows = append(d.Rows, r)
	}
	return d
}
