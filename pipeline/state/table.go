package state

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// API is the part of the DynamoDB API a Table calls: item-level calls on
// one table. *dynamodb.Client satisfies it.
type API interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Table is the Store of a DynamoDB table.
type Table struct {
	Client API
	// Name is the table's name.
	Name string
	// Now is the clock of claims (nil: time.Now): a claim whose expires
	// is before now is free.
	Now func() time.Time
}

var _ Store = (*Table)(nil)

// NewTable returns the Table name of a DynamoDB client made from cfg.
func NewTable(cfg aws.Config, name string) *Table {
	return &Table{Client: dynamodb.NewFromConfig(cfg), Name: name}
}

func (t *Table) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// epoch is t as DynamoDB's TTL reads it: whole seconds since 1970,
// rounded up, so that an item never goes before its time.
func epoch(t time.Time) int64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return sec
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s(pk), "sk": s(sk)}
}

// wrap names the table and the call in err.
func (t *Table) wrap(call string, err error) error {
	return fmt.Errorf("state table %s: %s: %w", t.Name, call, err)
}

// Claim implements Store: one conditional PutItem, which succeeds when
// there is no item for key or its expires has passed.
func (t *Table) Claim(ctx context.Context, k string, ttl time.Duration) (string, bool, error) {
	now := t.now()
	token := newToken()
	item := key(claimPrefix+k, claimSK)
	item["token"] = s(token)
	item["state"] = s("claimed")
	item["expires"] = n(epoch(now.Add(ttl)))
	_, err := t.Client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(t.Name), Item: item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR expires < :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": n(now.Unix())},
	})
	var cf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &cf):
		return "", false, nil
	case err != nil:
		return "", false, t.wrap("claim", err)
	}
	return token, true, nil
}

// Complete implements Store: one UpdateItem.
func (t *Table) Complete(ctx context.Context, k, token string, keep time.Duration) error {
	_, err := t.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(t.Name), Key: key(claimPrefix+k, claimSK),
		UpdateExpression:          aws.String("SET #state = :done, expires = :expires"),
		ExpressionAttributeNames:  map[string]string{"#state": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":done": s("done"), ":expires": n(epoch(t.now().Add(keep)))},
	})
	if err != nil {
		return t.wrap("complete", err)
	}
	return nil
}

// Release implements Store: one DeleteItem, conditional on token, so that
// a claim taken over after this one expired is left alone.
func (t *Table) Release(ctx context.Context, k, token string) error {
	in := &dynamodb.DeleteItemInput{TableName: aws.String(t.Name), Key: key(claimPrefix+k, claimSK)}
	if token != "" {
		in.ConditionExpression = aws.String("#token = :token")
		in.ExpressionAttributeNames = map[string]string{"#token": "token"}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":token": s(token)}
	}
	_, err := t.Client.DeleteItem(ctx, in)
	var cf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cf) {
		return t.wrap("release", err)
	}
	return nil
}

// SetNote implements Store: one UpdateItem, conditional on token; a
// claim no longer token's is left alone.
func (t *Table) SetNote(ctx context.Context, k, token, note string) error {
	_, err := t.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(t.Name), Key: key(claimPrefix+k, claimSK),
		UpdateExpression:          aws.String("SET note = :note"),
		ConditionExpression:       aws.String("#token = :token"),
		ExpressionAttributeNames:  map[string]string{"#token": "token"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":note": s(note), ":token": s(token)},
	})
	var cf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cf) {
		return t.wrap("note", err)
	}
	return nil
}

// Note implements Store: one strongly consistent GetItem.
func (t *Table) Note(ctx context.Context, k string) (string, error) {
	out, err := t.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(t.Name), Key: key(claimPrefix+k, claimSK),
		ProjectionExpression: aws.String("note, expires"),
		ConsistentRead:       aws.Bool(true),
	})
	if err != nil {
		return "", t.wrap("read note", err)
	}
	note, _ := out.Item["note"].(*types.AttributeValueMemberS)
	exp, _ := out.Item["expires"].(*types.AttributeValueMemberN)
	if note == nil || exp == nil {
		return "", nil
	}
	if e, err := strconv.ParseInt(exp.Value, 10, 64); err != nil || e < t.now().Unix() {
		return "", nil
	}
	return note.Value, nil
}

// Add implements Store: one UpdateItem ADD, atomic across the fleet.
func (t *Table) Add(ctx context.Context, k string, expires time.Time) (int64, error) {
	out, err := t.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(t.Name), Key: key(counterPrefix+k, counterSK),
		UpdateExpression:          aws.String("ADD #count :one SET expires = :expires"),
		ExpressionAttributeNames:  map[string]string{"#count": "count"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": n(1), ":expires": n(epoch(expires))},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, t.wrap("count", err)
	}
	c, ok := out.Attributes["count"].(*types.AttributeValueMemberN)
	if !ok {
		return 0, t.wrap("count", errors.New("no count in the answer"))
	}
	v, err := strconv.ParseInt(c.Value, 10, 64)
	if err != nil {
		return 0, t.wrap("count", err)
	}
	return v, nil
}

// Record implements Store: one PutItem.
func (t *Table) Record(ctx context.Context, k string, at time.Time, id string, expires time.Time) error {
	item := key(eventPrefix+k, eventSK(at, id))
	item["expires"] = n(epoch(expires))
	if _, err := t.Client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(t.Name), Item: item}); err != nil {
		return t.wrap("record", err)
	}
	return nil
}

// Events implements Store: one strongly consistent Query of the keys
// only (more pages when over 1 MB).
func (t *Table) Events(ctx context.Context, k string, since, until time.Time) ([]Event, error) {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(t.Name),
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		ProjectionExpression:   aws.String("sk"),
		ConsistentRead:         aws.Bool(true),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(eventPrefix + k), ":lo": s(since.UTC().Format(skTime)), ":hi": s(until.UTC().Format(skTime) + "#\U0010FFFF"),
		},
	}
	var out []Event
	for {
		page, err := t.Client.Query(ctx, in)
		if err != nil {
			return nil, t.wrap("history", err)
		}
		for _, item := range page.Items {
			sk, _ := item["sk"].(*types.AttributeValueMemberS)
			if sk == nil {
				continue
			}
			e, err := parseEventSK(sk.Value)
			if err != nil {
				return nil, t.wrap("history", err)
			}
			out = append(out, e)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}
