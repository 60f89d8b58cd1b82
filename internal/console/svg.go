package console

import (
	"strconv"
	"strings"
)

// The drawing of a trust graph: an SVG laid out here and written by the
// graph template (html/template escapes every name in it). The tenants
// are clusters: inbound, the other tenants (and external issuers, and the
// unknown holders of shared keys) in the left column and the tenant
// itself on the right; outbound, the tenant on the left and the tenants
// it reaches on the right. Each edge runs from the principal that holds
// the trust to what it reaches, labelled with its kind; a blocked edge
// (one that lets no one in) is dashed.
const (
	svgWidth   = 980
	colWidth   = 360
	nodeHeight = 30
	nodeGap    = 10
	clusterTop = 28 // the cluster's title
	clusterPad = 12
	clusterGap = 22
	leftX      = 10
	rightX     = svgWidth - colWidth - 10
)

type svgNode struct {
	Label, Title string
	X, Y, W      int
}

type svgCluster struct {
	Label, Class string
	X, Y, W, H   int
	Nodes        []*svgNode
}

type svgEdge struct {
	ID, Kind, Path, Title string
	LX, LY                int
	Blocked               bool
}

type svgGraph struct {
	W, H     int
	Clusters []*svgCluster
	Edges    []svgEdge
}

// column lays out clusters of nodes top to bottom at x.
type column struct {
	x        int
	clusters []*svgCluster
	byName   map[string]*svgCluster
	nodes    map[string]*svgNode
}

func newColumn(x int) *column {
	return &column{x: x, byName: map[string]*svgCluster{}, nodes: map[string]*svgNode{}}
}

func (c *column) node(cluster, class, key, label, title string) *svgNode {
	cl := c.byName[cluster]
	if cl == nil {
		cl = &svgCluster{Label: cluster, Class: class, X: c.x, W: colWidth}
		c.byName[cluster] = cl
		c.clusters = append(c.clusters, cl)
	}
	k := cluster + "\x00" + key
	if n := c.nodes[k]; n != nil {
		return n
	}
	n := &svgNode{Label: short(46, label), Title: title, W: colWidth - 2*clusterPad}
	c.nodes[k] = n
	cl.Nodes = append(cl.Nodes, n)
	return n
}

// place gives every cluster and node its position; it returns the height.
func (c *column) place() int {
	y := 10
	for _, cl := range c.clusters {
		cl.Y = y
		ny := y + clusterTop
		for _, n := range cl.Nodes {
			n.X, n.Y = cl.X+clusterPad, ny
			ny += nodeHeight + nodeGap
		}
		cl.H = ny - y - nodeGap + clusterPad
		y += cl.H + clusterGap
	}
	return y
}

// target is the node an edge reaches in its tenant: the scope of a role,
// the resource of a permission, else the object it goes through.
func target(e edgeView) (key, label string) {
	switch e.Kind {
	case EdgeRole, EdgeDelegation:
		return strings.ToLower(e.Where), scopeLabel(e.Where)
	case EdgeAppRole, EdgeGrant:
		return "resource " + e.Where, e.Where
	case EdgeSAS:
		return strings.ToLower(e.Where), scopeLabel(e.Where)
	}
	return e.Via, e.Via
}

// scopeLabel shortens a scope to its last type and name.
func scopeLabel(scope string) string {
	parts := strings.Split(strings.Trim(scope, "/"), "/")
	switch {
	case len(parts) >= 2 && len(parts) <= 4:
		return strings.Join(parts[len(parts)-2:], " ")
	case len(parts) > 4:
		return parts[len(parts)-2] + " " + parts[len(parts)-1]
	}
	return scope
}

func drawGraph(tenantName, view string, edges []edgeView) *svgGraph {
	left, right := newColumn(leftX), newColumn(rightX)
	type pair struct{ from, to *svgNode }
	pairs := make([]pair, 0, len(edges))
	for _, e := range edges {
		fromCluster, class := e.FromTenant, "other"
		if e.From.TenantID == "" {
			class = "unknown"
		}
		toCluster, toClass := e.InTenant, "self"
		if view == "out" {
			fromCluster, class, toClass = tenantName, "self", "other"
		}
		who := e.From.Name
		if e.From.Kind != "" {
			who += " (" + e.From.Kind + ")"
		}
		from := left.node(fromCluster, class, e.From.Key(), who, e.From.ID)
		key, label := target(e)
		to := right.node(toCluster, toClass, key, label, e.Where)
		pairs = append(pairs, pair{from, to})
	}
	g := &svgGraph{W: svgWidth, H: max(left.place(), right.place(), 60)}
	g.Clusters = append(left.clusters, right.clusters...)
	// Each label sits on its edge just before the node it reaches,
	// stacked when several edges reach one node.
	into := map[*svgNode]int{}
	for i, e := range edges {
		p := pairs[i]
		x1, y1 := p.from.X+p.from.W, p.from.Y+nodeHeight/2
		x2, y2 := p.to.X, p.to.Y+nodeHeight/2
		mx := (x1 + x2) / 2
		k := into[p.to]
		into[p.to]++
		g.Edges = append(g.Edges, svgEdge{ID: e.ID(), Kind: string(e.Kind), Blocked: e.Blocked != "",
			Path:  pathOf(x1, y1, mx, x2, y2),
			Title: e.What + " — " + e.Why,
			LX:    x2 - 62, LY: y2 - 4 - 10*k})
	}
	return g
}

// pathOf is a cubic curve from (x1,y1) to (x2,y2) through the middle.
func pathOf(x1, y1, mx, x2, y2 int) string {
	var b strings.Builder
	b.WriteString("M")
	for i, n := range []int{x1, y1, mx, y1, mx, y2, x2, y2} {
		if i == 2 {
			b.WriteString(" C")
		}
		b.WriteString(" ")
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}
