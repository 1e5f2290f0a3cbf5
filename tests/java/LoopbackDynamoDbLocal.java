// DynamoDB Local bound to one address (default 127.0.0.1) instead of every interface.
//
// DynamoDB Local's command line has no host option (`-help` lists -port, -inMemory, -dbPath,
// -sharedDb, -cors, -delayTransientStatuses, -optimizeDbBeforeStartup, -disableTelemetry): its
// Jetty server listens on all interfaces. This launcher builds the server the jar's own main
// builds (ServerRunner.createServerFromCommandLineArgs, same arguments), sets the host of its
// Jetty connector before it starts, and starts it. Run in Java's single-file source mode:
//
//   java -Ddynamodb.host=127.0.0.1 -Djava.library.path=DynamoDBLocal_lib \
//        -cp DynamoDBLocal.jar tests/java/LoopbackDynamoDbLocal.java -inMemory -port 8000
import com.amazonaws.services.dynamodbv2.local.main.ServerRunner;
import com.amazonaws.services.dynamodbv2.local.server.DynamoDBProxyServer;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

public class LoopbackDynamoDbLocal {
    public static void main(String[] args) throws Exception {
        String host = System.getProperty("dynamodb.host", "127.0.0.1");
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        java.lang.reflect.Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        for (Connector connector : server.getConnectors()) {
            ((ServerConnector) connector).setHost(host);
        }
        proxy.start();
        System.out.println("DynamoDB Local listening on " + host);
    }
}
