//! The store's batch writes on real SQLite files and a real Postgres: large batches, repeated rows, forgets and history land exactly as written.

#![allow(clippy::unwrap_used)]

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::{Backend, TestDb, store};
use hearth_hub::model::house::{ButtonRecord, NodeRecord, OutputRecord};
use hearth_hub::store::Write;
use hearth_protocol::{Availability, Climate, Id, OnOff, OutputKind, OutputRef, PressAction};

fn button(n: usize, presses: i64) -> ButtonRecord {
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 7, 0, 0).unwrap();
    ButtonRecord {
        id: Id::new(&format!("b{n}")).unwrap(),
        state: if presses % 2 == 1 {
            OnOff::On
        } else {
            OnOff::Off
        },
        changed_at: at,
        last_action: Some(PressAction::Single),
        last_press_at: Some(at + Duration::seconds(presses)),
        press_count: presses,
    }
}

on_both_backends!(
    a_batch_of_thousands_of_writes_lands_whole,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        let store = store(&db).await;
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 7, 0, 0).unwrap();

        // 1,200 buttons (several statements' worth), each written three
        // times in the batch: the last write must win.
        let mut writes = Vec::new();
        for presses in 1..=3 {
            for n in 0..1200 {
                writes.push(Write::Button(button(n, presses)));
            }
        }
        // Forgotten in the same batch it was first written in; and one
        // forgotten then written again.
        writes.push(Write::ForgetButton(Id::new("b7").unwrap()));
        writes.push(Write::ForgetButton(Id::new("b8").unwrap()));
        writes.push(Write::Button(button(8, 9)));
        for n in 0..1500 {
            writes.push(Write::MessageId {
                id: format!("press-{n}"),
                at,
            });
        }
        // A redelivered id in the same batch.
        writes.push(Write::MessageId {
            id: "press-3".to_owned(),
            at,
        });
        let lamp = OutputRef {
            node: Id::new("pi-1").unwrap(),
            kind: OutputKind::Light,
            name: Id::new("lamp").unwrap(),
        };
        for state in [OnOff::On, OnOff::Off] {
            writes.push(Write::Output(OutputRecord {
                output: lamp.clone(),
                state,
                changed_at: at,
            }));
        }
        let node = Id::new("pi-1").unwrap();
        for minute in 0..600 {
            let climate = Climate {
                temperature: 20.0 + f64::from(minute % 10),
                humidity: 40.0,
                at: at + Duration::minutes(minute.into()),
            };
            writes.push(Write::Reading {
                node: node.clone(),
                climate: climate.clone(),
            });
            if minute == 599 {
                writes.push(Write::Node(NodeRecord {
                    id: node.clone(),
                    availability: Some(Availability::Online),
                    last_seen: Some(climate.at),
                    climate: Some(climate),
                }));
            }
        }
        // The same instant twice: the first reading stays, as before.
        writes.push(Write::Reading {
            node: node.clone(),
            climate: Climate {
                temperature: -40.0,
                humidity: 0.0,
                at,
            },
        });

        store.apply(&writes).await.unwrap();

        let house = store.load().await.unwrap();
        assert_eq!(house.buttons.len(), 1199, "1,200 written, b7 forgotten");
        assert!(!house.buttons.contains_key(&Id::new("b7").unwrap()));
        assert_eq!(house.buttons[&Id::new("b8").unwrap()].press_count, 9);
        assert_eq!(house.buttons[&Id::new("b1199").unwrap()].press_count, 3);
        assert_eq!(house.buttons[&Id::new("b0").unwrap()].state, OnOff::On);
        assert_eq!(house.outputs[&lamp].state, OnOff::Off);
        let pi = &house.nodes[&node];
        assert_eq!(pi.climate.as_ref().unwrap().temperature, 29.0);
        assert_eq!(pi.availability, Some(Availability::Online));
        assert_eq!(
            store.message_ids_since(at).await.unwrap().len(),
            1500,
            "every press id once"
        );
        let history = store.history(&node, at).await.unwrap();
        assert_eq!(history.len(), 600);
        assert_eq!(history[0].temperature, 20.0);

        // A second batch updates rows written by the first.
        store
            .apply(&[
                Write::Button(button(0, 10)),
                Write::ForgetButton(Id::new("b1").unwrap()),
            ])
            .await
            .unwrap();
        let house = store.load().await.unwrap();
        assert_eq!(house.buttons[&Id::new("b0").unwrap()].press_count, 10);
        assert_eq!(house.buttons.len(), 1198);

        // An output its node no longer has goes; one forgotten and written
        // again in the same batch stays.
        let fan = OutputRef {
            node: Id::new("pi-1").unwrap(),
            kind: OutputKind::Switch,
            name: Id::new("fan").unwrap(),
        };
        let on = |output: &OutputRef| {
            Write::Output(OutputRecord {
                output: output.clone(),
                state: OnOff::On,
                changed_at: at,
            })
        };
        store.apply(&[on(&fan)]).await.unwrap();
        assert_eq!(store.load().await.unwrap().outputs.len(), 2);
        store
            .apply(&[
                Write::ForgetOutput(lamp.clone()),
                Write::ForgetOutput(fan.clone()),
                on(&fan),
            ])
            .await
            .unwrap();
        let outputs = store.load().await.unwrap().outputs;
        assert_eq!(outputs.keys().collect::<Vec<_>>(), [&fan]);

        // A node retired: its row, outputs and history go.
        store
            .apply(&[Write::ForgetNode(node.clone())])
            .await
            .unwrap();
        let house = store.load().await.unwrap();
        assert!(house.nodes.is_empty() && house.outputs.is_empty());
        assert!(store.history(&node, at).await.unwrap().is_empty());
    }
);
