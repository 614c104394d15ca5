package clustertest

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx database/sql driver
	"github.com/twmb/franz-go/pkg/kadm"
)

// Admin returns a Kafka admin client of the broker, shared by the
// cluster's callers and closed when the test ends.
func (c *Cluster) Admin() (*kadm.Client, error) {
	c.adminOnce.Do(func() {
		cl, err := c.KafkaCluster().NewClient()
		if err != nil {
			c.adminErr = err
			return
		}
		c.t.Cleanup(cl.Close)
		c.admin = kadm.NewClient(cl)
	})
	return c.admin, c.adminErr
}

// Member is one member of a consumer group and the partitions it owns.
type Member struct {
	ID         string
	Partitions []string // "topic/partition", sorted
}

// Membership is a consumer group as the broker describes it.
type Membership struct {
	Group   string
	State   string // Stable, PreparingRebalance, CompletingRebalance, Empty, Dead
	Members []Member
}

// Owned returns every partition some member owns, and how many are owned
// by more than one member (0 in a healthy group).
func (m Membership) Owned() (owned []string, overlaps int) {
	seen := map[string]int{}
	for _, mem := range m.Members {
		for _, p := range mem.Partitions {
			seen[p]++
		}
	}
	for p, n := range seen {
		owned = append(owned, p)
		if n > 1 {
			overlaps++
		}
	}
	slices.Sort(owned)
	return owned, overlaps
}

// DescribeGroup returns the members of a consumer group and their
// assignments.
func (c *Cluster) DescribeGroup(ctx context.Context, group string) (Membership, error) {
	adm, err := c.Admin()
	if err != nil {
		return Membership{}, err
	}
	groups, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return Membership{}, err
	}
	d, ok := groups[group]
	if !ok {
		return Membership{}, fmt.Errorf("group %s: not described", group)
	}
	if d.Err != nil {
		return Membership{}, fmt.Errorf("group %s: %w", group, d.Err)
	}
	out := Membership{Group: group, State: d.State}
	for _, m := range d.Members {
		mem := Member{ID: m.MemberID}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				for _, p := range t.Partitions {
					mem.Partitions = append(mem.Partitions, fmt.Sprintf("%s/%d", t.Topic, p))
				}
			}
		}
		slices.Sort(mem.Partitions)
		out.Members = append(out.Members, mem)
	}
	return out, nil
}

// TopicPartitions returns "topic/partition" for every partition of the
// topics.
func (c *Cluster) TopicPartitions(ctx context.Context, topics ...string) ([]string, error) {
	adm, err := c.Admin()
	if err != nil {
		return nil, err
	}
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range details.Sorted() {
		if t.Err != nil {
			return nil, fmt.Errorf("topic %s: %w", t.Topic, t.Err)
		}
		for p := range t.Partitions {
			out = append(out, fmt.Sprintf("%s/%d", t.Topic, p))
		}
	}
	slices.Sort(out)
	return out, nil
}

// DB opens the database of a service (close it when done). Tests read it
// to check what the service did; they should not write.
func (c *Cluster) DB(service string) (*sql.DB, error) {
	url, ok := c.Databases[service]
	if !ok {
		return nil, fmt.Errorf("no database for %q", service)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	return db, nil
}
