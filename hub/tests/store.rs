//! The store's batch writes on real SQLite files and a real Postgres: large batches, repeated rows, forgets and history land exactly as written.

#![allow(clippy::unwrap_used)]

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::{Backend, TestDb, store};
use hearth_hub::model::house::{ButtonRecord, NodeRecord, OutputRecord};
use hearth_hub::store::Write;
use hearth_protocol::{
    Availability, Climate, Id, OnOff, OutputKind, OutputRef, PressAction, Quantity,
};

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
            for reading in climate.readings() {
                writes.push(Write::Reading {
                    node: node.clone(),
                    reading,
                });
            }
            if minute == 599 {
                writes.push(Write::Node(NodeRecord {
                    availability: Some(Availability::Online),
                    last_seen: Some(climate.at),
                    readings: climate.readings().into_iter().collect(),
                    ..NodeRecord::new(node.clone())
                }));
            }
        }
        // The same instant twice: the first reading stays, as before.
        let late = Climate {
            temperature: -40.0,
            humidity: 0.0,
            at,
        };
        for reading in late.readings() {
            writes.push(Write::Reading {
                node: node.clone(),
                reading,
            });
        }

        store.apply(&writes).await.unwrap();

        let house = store.load().await.unwrap();
        assert_eq!(house.buttons.len(), 1199, "1,200 written, b7 forgotten");
        let b7 = house.buttons.get(&Id::new("b7").unwrap());
        assert!(b7.is_none(), "b7 was forgotten, yet loaded: {b7:?}");
        assert_eq!(house.buttons[&Id::new("b8").unwrap()].press_count, 9);
        assert_eq!(house.buttons[&Id::new("b1199").unwrap()].press_count, 3);
        assert_eq!(house.buttons[&Id::new("b0").unwrap()].state, OnOff::On);
        assert_eq!(house.outputs[&lamp].state, OnOff::Off);
        let pi = &house.nodes[&node];
        assert_eq!(pi.readings.value(Quantity::Temperature), Some(29.0));
        assert_eq!(pi.availability, Some(Availability::Online));
        assert_eq!(
            store.message_ids_since(at).await.unwrap().len(),
            1500,
            "every press id once"
        );
        let history = store.history(&node, at).await.unwrap();
        assert_eq!(history.len(), 600);
        assert_eq!(history[0].get(Quantity::Temperature), Some(20.0));
        assert_eq!(history[0].get(Quantity::Humidity), Some(40.0));

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
        assert!(
            house.nodes.is_empty() && house.outputs.is_empty(),
            "left behind: {:?} {:?}",
            house.nodes,
            house.outputs
        );
        let history = store.history(&node, at).await.unwrap();
        assert!(history.is_empty(), "history left behind: {history:?}");
    }
);

on_both_backends!(
    an_upgrade_keeps_every_climate_reading,
    async |backend: Backend| {
        let db = TestDb::new(backend).await;
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 7, 0, 0).unwrap();
        let ms = |minute: i64| (at + Duration::minutes(minute)).timestamp_millis();

        // A database as the hub left it before readings were stored by
        // quantity: migrations 0001 to 0003, climate in its old tables.
        sqlx::any::install_default_drivers();
        let url = match backend {
            Backend::Sqlite => format!("{}?mode=rwc", db.url),
            Backend::Postgres => db.url.clone(),
        };
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let mut migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("../migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("../migrations/postgres"),
        };
        let before: Vec<_> = migrator
            .migrations
            .iter()
            .filter(|m| m.version <= 3)
            .cloned()
            .collect();
        assert_eq!(before.len(), 3, "migrations 0001..0003");
        migrator.migrations = before.into();
        migrator.run(&pool).await.unwrap();
        let old = |minute: i64| {
            (
                20.0 + (minute % 7) as f64 / 10.0,
                40.0 + (minute % 5) as f64,
            )
        };
        for minute in 0..300 {
            let (temperature, humidity) = old(minute);
            sqlx::query(
                "INSERT INTO sensor_readings (node, at, temperature, humidity) VALUES ($1, $2, $3, $4)",
            )
            .bind("pi-1")
            .bind(ms(minute))
            .bind(temperature)
            .bind(humidity)
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO sensor_readings (node, at, temperature, humidity) VALUES ($1, $2, $3, $4)",
        )
        .bind("pi-2")
        .bind(ms(5))
        .bind(-3.5)
        .bind(99.0)
        .execute(&pool)
        .await
        .unwrap();
        for (id, climate) in [
            ("pi-1", Some((21.5, 40.0, ms(299)))),
            // Never reported climate, or (as the old load read it) only
            // half of one: no climate either way.
            ("pi-2", None),
        ] {
            sqlx::query(
                "INSERT INTO nodes (id, availability, last_seen, temperature, humidity, climate_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind("online")
            .bind(ms(299))
            .bind(climate.map(|c| c.0))
            .bind(climate.map(|c| c.1).or(Some(50.0)))
            .bind(climate.map(|c| c.2))
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;

        // The hub of today opens it: migration 0004 runs.
        let store = store(&db).await;
        let house = store.load().await.unwrap();
        let pi1 = Id::new("pi-1").unwrap();
        let pi2 = Id::new("pi-2").unwrap();
        assert_eq!(
            serde_json::to_value(&house.nodes[&pi1]).unwrap()["climate"],
            serde_json::json!({"temperature": 21.5, "humidity": 40.0, "at": "2026-11-22T11:59:00.000Z"}),
            "{:?}",
            house.nodes[&pi1]
        );
        assert_eq!(
            serde_json::to_value(&house.nodes[&pi2]).unwrap()["climate"],
            serde_json::Value::Null
        );

        // The history serves every old reading, as the API always showed it.
        let history = store.history(&pi1, at).await.unwrap();
        let want: Vec<serde_json::Value> = (0..300)
            .map(|minute| {
                let (temperature, humidity) = old(minute);
                serde_json::json!({
                    "at": at + Duration::minutes(minute),
                    "temperature": temperature,
                    "humidity": humidity,
                })
            })
            .collect();
        assert_eq!(
            serde_json::to_value(&history).unwrap(),
            serde_json::Value::Array(want)
        );
        let pi2_history = serde_json::to_value(store.history(&pi2, at).await.unwrap()).unwrap();
        assert_eq!(
            pi2_history,
            serde_json::json!([{"at": at + Duration::minutes(5), "temperature": -3.5, "humidity": 99.0}])
        );

        // Retention reaches the copied readings.
        let pruned = store.prune(at + Duration::minutes(100), at).await.unwrap();
        assert_eq!(
            pruned,
            2 * 101,
            "100 minutes of pi-1 and pi-2's one, per quantity"
        );
        assert_eq!(store.history(&pi1, at).await.unwrap().len(), 200);
    }
);
