// Package actions carries out what the engine decided: Dispatch turns a
// Plan into Results, through the small interfaces it calls (Notifier,
// implemented by actions/slack; Suppressor, by actions/suppression;
// Logbook). It builds the messages a notification becomes
// (BuildMessages), the digests that fold many notices into one message
// and a storm's root message (Digest), and renders them for previews.
// Which notices fold, and when a digest is posted, is not its to decide:
// Dispatch asks a Folder (the pipeline's storm batch). A dry run is a
// Dispatcher made of parts that only render.
package actions
