// Write load against Java ZooKeeper for `benches/kv_vs_zookeeper.sh`: the
// same shape as `zkfle bench kv` — C sessions (client connections), each
// keeping W asynchronous setData calls outstanding on its own znode —
// counting acknowledged writes per second (setData answered OK: the leader
// committed it after a quorum logged it) and each call's latency (p50/p99).
//
//   java -cp <zookeeper jars> ZkSetBench.java <connect string> <C> <W> <seconds> [warmup s] [value bytes]
//
// Prints `key value` lines like `zkfle bench kv`; the last is writes_per_sec.

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;

public class ZkSetBench {
    static final AtomicBoolean measuring = new AtomicBoolean(false);
    static final AtomicBoolean stopping = new AtomicBoolean(false);
    static final AtomicLong errors = new AtomicLong();

    /** Latencies in µs, per session (appended by its event thread only). */
    static final class Session {
        final long[] lat = new long[4_000_000];
        int n;
        long acked;
    }

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        int conns = Integer.parseInt(args[1]);
        int window = Integer.parseInt(args[2]);
        double secs = Double.parseDouble(args[3]);
        double warmup = args.length > 4 ? Double.parseDouble(args[4]) : 2.0;
        int size = args.length > 5 ? Integer.parseInt(args[5]) : 16;
        byte[] value = new byte[size];
        java.util.Arrays.fill(value, (byte) 'x');

        List<ZooKeeper> zks = new ArrayList<>();
        List<Session> sessions = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < conns; c++) {
            CountDownLatch up = new CountDownLatch(1);
            ZooKeeper zk = new ZooKeeper(connect, 30000, e -> {
                if (e.getState() == Watcher.Event.KeeperState.SyncConnected) up.countDown();
            });
            if (!up.await(30, TimeUnit.SECONDS)) throw new RuntimeException("no session");
            String path = "/zkfle-bench-" + c;
            try {
                zk.create(path, value, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            } catch (KeeperException.NodeExistsException ok) {
            }
            zks.add(zk);
            Session s = new Session();
            sessions.add(s);
            Semaphore slots = new Semaphore(window);
            Thread t = new Thread(() -> {
                while (!stopping.get()) {
                    try {
                        if (!slots.tryAcquire(100, TimeUnit.MILLISECONDS)) continue;
                    } catch (InterruptedException ie) {
                        return;
                    }
                    final long sent = System.nanoTime();
                    zk.setData(path, value, -1, (rc, p, ctx, stat) -> {
                        long now = System.nanoTime();
                        if (rc != 0) {
                            errors.incrementAndGet();
                        } else if (measuring.get() && s.n < s.lat.length) {
                            s.lat[s.n++] = (now - sent) / 1000;
                            s.acked++;
                        }
                        slots.release();
                    }, null);
                }
            });
            threads.add(t);
        }
        for (Thread t : threads) t.start();
        Thread.sleep((long) (warmup * 1000));
        measuring.set(true);
        long t0 = System.nanoTime();
        Thread.sleep((long) (secs * 1000));
        measuring.set(false);
        double span = (System.nanoTime() - t0) / 1e9;
        stopping.set(true);
        for (Thread t : threads) t.join();
        // Let the outstanding calls finish before reading the tallies.
        Thread.sleep(500);
        long acked = 0;
        int total = 0;
        for (Session s : sessions) {
            acked += s.acked;
            total += s.n;
        }
        long[] all = new long[total];
        int k = 0;
        for (Session s : sessions) {
            System.arraycopy(s.lat, 0, all, k, s.n);
            k += s.n;
        }
        java.util.Arrays.sort(all);
        for (ZooKeeper zk : zks) zk.close();
        System.out.println("acked " + acked);
        System.out.println("errors " + errors.get());
        System.out.println("p50_us " + pct(all, 0.50));
        System.out.println("p99_us " + pct(all, 0.99));
        System.out.printf("writes_per_sec %.0f%n", acked / span);
    }

    static long pct(long[] a, double p) {
        if (a.length == 0) return 0;
        int i = (int) Math.ceil(a.length * p);
        return a[Math.max(1, Math.min(i, a.length)) - 1];
    }
}
