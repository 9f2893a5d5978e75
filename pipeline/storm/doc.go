// Package storm decides when a destination's notices stop being posted
// one by one and fold into digests, and holds what that takes: each
// destination's storm state (Storm), counted in the process or across
// the fleet (Counter); the storm threads, their root message, posted
// once per storm (Roots) and edited at most every RootEditEvery; and the
// digests of one batch (Batch, an actions.Folder), posted by Flush once
// the batch ends. What a digest or a root says is actions' to render
// (actions.Digest).
package storm
