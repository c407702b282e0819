package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/client"
)

func nowMillis() int64 { return time.Now().UnixMilli() }

// JobResultsForGame returns, oldest first, the entries of the pipeline's job
// results stream for gameID, as field maps with the entry ID under "id".
func (p *Pipeline) JobResultsForGame(ctx context.Context, gameID string) ([]map[string]string, error) {
	return p.entriesForGame(ctx, p.Streams.JobResults, gameID)
}

func (p *Pipeline) entriesForGame(ctx context.Context, stream, gameID string) ([]map[string]string, error) {
	entries, err := p.Redis.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	var out []map[string]string
	for _, e := range entries {
		fields := map[string]string{"id": e.ID}
		for k, v := range e.Values {
			fields[k], _ = v.(string)
		}
		if fields["game_id"] == gameID {
			out = append(out, fields)
		}
	}
	return out, nil
}

// GameContainerLabel is the label the Runtime Manager puts on a game's
// container, naming the game.
const GameContainerLabel = "galaxy.rtmanager.game_id"

// ContainersForGame asks the Docker daemon for every container, running or
// not, labelled as gameID's.
func ContainersForGame(ctx context.Context, gameID string) ([]string, error) {
	c, err := DockerClient() // shared by the process: not closed here
	if err != nil {
		return nil, err
	}
	res, err := c.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", GameContainerLabel+"="+gameID),
	})
	if err != nil {
		return nil, fmt.Errorf("list containers of %s: %w", gameID, err)
	}
	var ids []string
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids, nil
}
